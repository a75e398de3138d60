"""Every minute: the job of each due schedule's slot (jobcore/scheduler.py)."""

from jobcore.scheduler import run_schedules_handler

handler = run_schedules_handler
