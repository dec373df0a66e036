"""The studies: one module each, owning its run specs, recorded runs, findings and tables.

* :mod:`.paper`: the paper's Tables 1-2 reproduced, its targets on the synthetic stand-in
  and its claims (notebooks 05-06);
* :mod:`.beyond`: beyond the paper: each model against its own ceiling, longer training,
  the MUA wirings (notebook 07);
* :mod:`.alignment`: CMN variants that use word alignment, their recorded long runs and
  targets, and the audit row on Guide-Attention (notebook 08);
* :mod:`.precision`: bf16 against fp32 (``cmn bench --parity``);
* :mod:`.audit`: the claims audit and the verdict on the paper, assembled from every
  study's rows by one writer;
* :mod:`.common`: the questions and helpers more than one study asks.

Nothing is imported here, so that reading one study loads only what it needs.
"""
