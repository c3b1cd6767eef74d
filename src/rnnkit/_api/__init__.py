"""The pieces behind `rnnkit.api` (its public functions live there; these modules serve them):

* `rundirs`: the run directory's paths and checks (config.yaml, a default name, absolute input paths,
  writable with room to spare, a run already there, a resume's scratch directory and saved config);
* `repairs`: `train.nonfinite=repair`'s retry loop and `rnnkit diagnose --repair`'s plan;
* `console`: what `train` tells the user on stderr before the first step (`describe_run`).
"""
