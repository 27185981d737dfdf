"""KindSet: one kind of object (exposures, rules, ...) of one DesiredState, built on demand.

At 100k exposures a frozenset of every exposure per event costs milliseconds (building it,
freeing the last one, and every `old - new` a consumer takes to learn what changed): O(N) for
a change of one. The aggregate instead hands out KindSets: a read-only set that knows the
change from its predecessor and only becomes a full frozenset when someone iterates it or
tests membership (a full plan, a status dump). Consecutive states' sets are linked forward
(each to its successor, with what was added and removed on the way), so `delta(old, new)`
is the composed change, proportional to it, and an old set materialises as its successor's
content minus the additions plus the removals. The newest set reads the aggregate's live
reference counts, corrected by what changed since it was handed out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Set
from typing import Any

# A source of the newest set: () -> (live keys, added since, removed since).
LiveSource = Callable[[], tuple[Any, set, set]]


class KindSet(Set):
    """A frozenset-like set materialised on first use (see the module docstring)."""

    __slots__ = ("_value", "_live", "_next", "_added", "_removed", "__weakref__")

    def __init__(self, live: LiveSource):
        self._value: frozenset | None = None
        self._live: LiveSource | None = live
        self._next: KindSet | None = None
        self._added: frozenset = frozenset()  # in _next, not here
        self._removed: frozenset = frozenset()  # here, not in _next

    def succeeded_by(self, nxt: KindSet, added: set, removed: set) -> None:
        """`nxt` is this set plus `added` minus `removed` (the aggregate's next state)."""
        self._next, self._added, self._removed = nxt, frozenset(added), frozenset(removed)
        self._live = None

    def frozen(self) -> frozenset:
        """The content as a frozenset (computed once)."""
        if self._value is None:
            if self._live is not None:
                keys, added, removed = self._live()
                value = frozenset(keys)
                if added or removed:
                    value = value.difference(added).union(removed)
            else:
                # iterative over the chain: no recursion depth limit on a long-kept old state
                chain = [self]
                node = self._next
                while node is not None and node._value is None and node._live is None:
                    chain.append(node)
                    node = node._next
                assert node is not None
                value = node.frozen()
                for s in reversed(chain):
                    value = value.difference(s._added).union(s._removed)
                    s._value = value
                return value
            self._value = value
        return self._value

    # the Set protocol, answered by the frozenset
    def __contains__(self, x: object) -> bool:
        return x in self.frozen()

    def __iter__(self) -> Iterator:
        return iter(self.frozen())

    def __len__(self) -> int:
        return len(self.frozen())

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, KindSet):
            other = other.frozen()
        return self.frozen() == other

    def __hash__(self) -> int:
        return hash(self.frozen())

    def _other(self, other: object) -> Any:
        return other.frozen() if isinstance(other, KindSet) else other

    def __sub__(self, other: object) -> frozenset:
        return self.frozen() - self._other(other)

    def __rsub__(self, other: object) -> frozenset:
        return self._other(other) - self.frozen()

    def __and__(self, other: object) -> frozenset:
        return self.frozen() & self._other(other)

    __rand__ = __and__

    def __or__(self, other: object) -> frozenset:
        return self.frozen() | self._other(other)

    __ror__ = __or__

    def __xor__(self, other: object) -> frozenset:
        return self.frozen() ^ self._other(other)

    __rxor__ = __xor__

    def __le__(self, other: object) -> bool:
        return self.frozen() <= self._other(other)

    def __ge__(self, other: object) -> bool:
        return self.frozen() >= self._other(other)

    def __lt__(self, other: object) -> bool:
        return self.frozen() < self._other(other)

    def __gt__(self, other: object) -> bool:
        return self.frozen() > self._other(other)

    def __bool__(self) -> bool:
        return bool(self.frozen())

    def __repr__(self) -> str:
        return f"KindSet({set(self.frozen())!r})"

    def __reduce__(self):
        return (frozenset, (tuple(self.frozen()),))


def delta(old: Set, new: Set) -> tuple[frozenset, frozenset] | None:
    """(removed, added) from `old` to `new` when `new` is `old` or a later set of the same
    chain (found in O(change)); None otherwise (the caller takes set differences)."""
    if old is new:
        return frozenset(), frozenset()
    if not isinstance(old, KindSet) or not isinstance(new, KindSet):
        return None
    added: set[Hashable] = set()
    removed: set[Hashable] = set()
    node: KindSet | None = old
    while node is not None and node is not new:
        for x in node._removed:
            if x in added:
                added.discard(x)
            else:
                removed.add(x)
        for x in node._added:
            if x in removed:
                removed.discard(x)
            else:
                added.add(x)
        node = node._next
    if node is None:
        return None
    return frozenset(removed), frozenset(added)
