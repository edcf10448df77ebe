"""The fine-tuning tasks of stages 06-07: one ``Task`` record per task, one file each, in ``TASKS``.

A task says what a LoRA run trains on and how it is judged: the transformers head it loads, the
loss kind of the training loop, its tokenised examples, its per-example test scores and the
metrics made of them (the primary one and its direction), and the baseline row stage 07 puts
beside the fine-tuned inits. ``distchar.config`` derives ``training.tasks``' allowed names and
defaults from ``TASKS``; stages 06 and 07 ask the record for everything task-specific.

To add a task: a new file here defining ``TASK = Task(...)`` (``task.py``; see ``sentiment.py``), its
import in ``TASKS`` below, and its entry under ``training.tasks`` in params.yaml.

These modules are read by ``distchar.config`` when it checks params.yaml, which stays free of
torch, transformers, pandas and SciPy (``python -m distchar.config params.yaml`` takes 0.6 s;
importing those too takes 7 s, both on 2 busy cores): what a task needs of them is imported
inside its functions.
"""

from __future__ import annotations

from distchar.errors import DistcharError
from distchar.tasks import odds, sentiment
from distchar.tasks.task import Task

TASKS: dict[str, Task] = {task.name: task for task in (odds.TASK, sentiment.TASK)}
"""Task name -> its record, in report order."""


def get_task(name: str) -> Task:
    """The task called ``name``; one sentence naming the tasks there are otherwise."""
    if name not in TASKS:
        raise DistcharError(f"Unknown task '{name}'; choose one of {', '.join(TASKS)}.")
    return TASKS[name]
