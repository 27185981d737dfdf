# Loads a Vagrantfile with a stand-in for Vagrant that records, per machine, the networks it
# defines (the options of each `vm.network`), and prints them as JSON. Everything else the
# Vagrantfile calls (providers, provisioners, synced folders) is accepted and ignored: real
# Vagrant checks those (`vagrant validate`); this shows what the machines are wired to.
require "json"

class Recorder
  def initialize(name, out)
    @name = name
    @out = out
  end

  def vm
    self
  end

  def define(name)
    @out[name] = []
    yield Recorder.new(name, @out)
  end

  def network(kind, **opts)
    @out[@name] << opts.merge(kind: kind) if @name
  end

  def method_missing(*_args, **_kw)
    yield Recorder.new(nil, {}) if block_given?
    nil
  end

  def respond_to_missing?(*_args)
    true
  end
end

module Vagrant
  def self.configure(_version)
    machines = {}
    yield Recorder.new(nil, machines)
    puts JSON.generate(machines)
  end
end

load ARGV.fetch(0)
