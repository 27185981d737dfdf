"""ovnbgp: expose OVN VM IPs, floating IPs and tenant networks through BGP."""

__version__ = "0.1.0"
