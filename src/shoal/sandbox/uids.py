"""Unprivileged uids for environments: unique among live environments, from a configured range."""

from __future__ import annotations


class UidRangeExhausted(RuntimeError):
    pass


class UidAllocator:
    def __init__(self, first: int, last: int) -> None:
        if not 0 < first <= last:
            raise ValueError(f"bad uid range {first}-{last}")
        self.first, self.last = first, last
        self._next = first
        self._live: set[int] = set()

    @classmethod
    def parse(cls, text: str) -> UidAllocator:
        first, _, last = text.partition("-")
        return cls(int(first), int(last or first))

    def take(self) -> int:
        size = self.last - self.first + 1
        for _ in range(size):
            uid = self._next
            self._next = self.first + (self._next - self.first + 1) % size
            if uid not in self._live:
                self._live.add(uid)
                return uid
        raise UidRangeExhausted(
            f"all {size} uids of {self.first}-{self.last} are in use by live environments"
        )

    def give_back(self, uid: int) -> None:
        self._live.discard(uid)

    @property
    def in_use(self) -> int:
        return len(self._live)
