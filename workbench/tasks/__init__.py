"""What is learned: one module per task behind the :class:`~workbench.tasks.base.Task` interface.

Built in: ``classification``. Alignment (contrastive retrieval) and ranking (recommendation)
slot in beside it as modules of this package, reusing the trainer, run store, sweeps and panels.
"""

from workbench.tasks.base import Task, available_tasks, make_task, register_task, unregister_task

__all__ = ["Task", "available_tasks", "make_task", "register_task", "unregister_task"]
