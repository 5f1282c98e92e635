"""semsim.baselines: the comparison methods, registered as codecs."""
