"""The paper's multi-task generative semantic communication system (work in progress).

So far: the task knowledge base (:mod:`semsim.semantic.task_kb`) and the transmitter source KB
(:mod:`semsim.semantic.source_kb`).
"""
