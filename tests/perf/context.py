"""What every benchmark gets: a scratch folder, a log folder and how many times to repeat."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BenchContext:
    """Scratch space and repetition counts for one benchmark run."""

    work_dir: Path
    runs: int = 3
    quick: bool = False
    _counter: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def fresh_dir(self, name: str) -> Path:
        """A new, empty folder under the scratch space."""
        path = self.work_dir / f"{name}-{next(self._counter)}"
        path.mkdir(parents=True)
        return path

    def log(self, name: str) -> Path:
        """Where a child process's stderr goes."""
        logs = self.work_dir / "logs"
        logs.mkdir(exist_ok=True)
        return logs / f"{name}.log"
