"""rt_tables file handling: only '# ovnbgp' lines are ours; everything else is kept verbatim."""

from ovnbgp.kernel import rt_tables

DEBIAN = """#
# reserved values
#
255\tlocal
254\tmain
253\tdefault
0\tunspec
#
# local
#
#1\tinr.ruhep
"""


def test_adds_marked_lines_and_keeps_every_other_line():
    u = rt_tables.update(DEBIAN, {"br-ex": 200, "br-vlan": 201})
    assert u.added == ((200, "br-ex"), (201, "br-vlan"))
    assert u.text.startswith(DEBIAN)
    assert u.text.endswith("200 br-ex # ovnbgp\n201 br-vlan # ovnbgp\n")
    assert rt_tables.owned(u.text) == {"br-ex": 200, "br-vlan": 201}


def test_idempotent():
    u = rt_tables.update(DEBIAN, {"br-ex": 200})
    again = rt_tables.update(u.text, {"br-ex": 200})
    assert not again.changed and again.text == u.text


def test_removes_only_own_stale_lines():
    text = DEBIAN + "200 br-ex # ovnbgp\n150 operator\n201 br-old # ovnbgp\n"
    u = rt_tables.update(text, {"br-ex": 200})
    assert u.removed == ((201, "br-old"),)
    assert "150 operator\n" in u.text and "br-old" not in u.text and u.text.startswith(DEBIAN)


def test_moved_table_id_rewrites_own_line():
    u = rt_tables.update("200 br-ex # ovnbgp\n", {"br-ex": 210})
    assert u.added == ((210, "br-ex"),) and u.removed == ((200, "br-ex"),)
    assert rt_tables.owned(u.text) == {"br-ex": 210}


def test_operator_line_satisfies_and_is_not_duplicated():
    u = rt_tables.update(DEBIAN + "200\tbr-ex\n", {"br-ex": 200})
    assert not u.changed and not u.conflicts


def test_conflicts_are_reported_not_written():
    u = rt_tables.update("200 other\n201 br-ex\n", {"br-ex": 202, "br-x": 200})
    assert not u.changed
    assert len(u.conflicts) == 2
    assert any("'200 other'" in c for c in u.conflicts)


def test_empty_file_gets_a_header():
    u = rt_tables.update("", {"br-ex": 200})
    assert u.text.splitlines()[0].startswith("#")
    assert rt_tables.parse(u.text)[0].ours


def test_hex_ids_and_trailing_comments_parse():
    es = rt_tables.parse("0x10 hexy\n20 named # a comment\n  # 30 commented\n")
    assert [(e.table, e.name, e.ours) for e in es] == [(16, "hexy", False), (20, "named", False)]


def test_atomic_write_keeps_mode(tmp_path):
    p = tmp_path / "d" / "ovnbgp.conf"
    rt_tables.write(p, "200 br-ex # ovnbgp\n")
    p.chmod(0o600)
    rt_tables.write(p, "201 br-ex # ovnbgp\n")
    assert rt_tables.read(p) == "201 br-ex # ovnbgp\n"
    assert p.stat().st_mode & 0o777 == 0o600
    assert rt_tables.read(tmp_path / "missing") == ""
