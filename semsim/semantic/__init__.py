"""The paper's multi-task generative semantic communication system (GenSC), registered as the
codec ``semantic``.

- :mod:`semsim.semantic.task_kb`: the task knowledge base (Sentence-BERT) maps a free-text request
  to a task (reconstruction or segmentation), at both ends, with no bits sent.
- :mod:`semsim.semantic.source_kb`: the transmitter's source KB (timm Swin stages) that selects
  the task's features.
- :mod:`semsim.semantic.system`: the whole system under the codec contract: unified JSCC encoder,
  receiver source KB, DiT diffusion reconstruction decoder and segmentation decoder; its presets
  (``small``, ``paper``) are ``presets.yaml``.
"""
