"""MessageParser (ovn/jsonparse.py) against python-ovs's own JSON parser: same values, same
message boundaries, whatever the chunks; errors as strings."""

from __future__ import annotations

import json

import ovs._json
import pytest

from ovnbgp.ovn.jsonparse import MessageParser

UPDATE = {"id": None, "method": "update3", "params": [
    ["monitor", "x"], "0ab1-ff",
    {"Port_Binding": {"11111111-1111-1111-1111-111111111111": {"initial": {
        "logical_port": "vm \"quoted\" {not a bracket} [nor this] \\ back\\slash",
        "mac": ["set", ["fa:16:3e:00:00:01 10.0.0.5", "ünï \u2603 \\u"]],
        "options": ["map", [["peer", "}]"], ["x", "\\"]]], "tag": 100, "up": True, "r": -1.5e3,
        "n": None}}}}]}


def ovs_parse(text: str):
    """python-ovs's C parser itself (ovs.json.from_string would be ours once installed)."""
    p = ovs._json.Parser(check_trailer=True)
    p.feed(text)
    return p.finish()


def feed_all(parser: MessageParser, chunks: list[str]) -> tuple[int, str]:
    """Feed like jsonrpc.Connection: until done; returns (chars taken, what is left)."""
    taken, left = 0, ""
    for i, c in enumerate(chunks):
        n = parser.feed(c)
        taken += n
        if parser.is_done():
            left = c[n:] + "".join(chunks[i + 1:])
            break
    return taken, left


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
def test_any_chunking_gives_the_message_and_stops_at_its_end(size):
    text = json.dumps(UPDATE) + json.dumps({"id": 2, "result": [], "error": None})
    first = len(json.dumps(UPDATE))
    p = MessageParser()
    taken, left = feed_all(p, [text[i:i + size] for i in range(0, len(text), size)])
    assert p.is_done() and taken == first
    assert p.finish() == UPDATE == ovs_parse(text[:first])
    q = MessageParser()
    feed_all(q, [left])
    assert q.finish() == {"id": 2, "result": [], "error": None}


def test_a_big_message_takes_the_fast_path_and_ends_where_it_ends():
    rows = {f"{i:08d}-1111-1111-1111-111111111111": {"initial": {"logical_port": f"p{i}\\\"}}",
                                                                "mac": ["set", [f"m{i}"]]}}
            for i in range(3000)}
    msg = {"id": 7, "result": [False, "x", {"Port_Binding": rows}], "error": None}
    text = json.dumps(msg, separators=(",", ":")) + '{"id":8}'
    p = MessageParser()
    taken, left = feed_all(p, [text[i:i + 4096] for i in range(0, len(text), 4096)])
    assert left == '{"id":8}' and p.finish() == msg


def test_whitespace_around_messages():
    p = MessageParser()
    assert p.feed(' \n {"a": [1, 2]}  {"b"') == len(' \n {"a": [1, 2]}')
    assert p.finish() == {"a": [1, 2]}


@pytest.mark.parametrize("text", ['"just a string"', "42", "nul", '{"a": NaN}', '{"a": 1,}',
                                  '{"a": 1} x', "[1, 2]]", ""])
def test_errors_are_strings_as_with_ovs(text):
    assert isinstance(ovs_parse(text), str)
    p = MessageParser(check_trailer=True)
    p.feed(text)
    assert isinstance(p.finish(), str)


@pytest.mark.parametrize("text", ['{"a": [1, {"b": "c"}]}', '[]', ' [1.5, true, null] '])
def test_whole_texts_as_ovs_json_from_string(text):
    p = MessageParser(check_trailer=True)
    assert p.feed(text) == len(text)
    assert p.finish() == ovs_parse(text)
