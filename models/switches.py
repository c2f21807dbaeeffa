"""The Approximator switches of the published DiffuRecSys code (docs/fidelity.md, one row each), torch-free
so that the studies can name them without importing a model.

PUBLISHED_APPROXIMATOR is the code's Approximator, the registered DiffuRecSys's; PAPER_READING is the
Approximator as the paper describes it, the registered default until validation chose the authors'
(three seeds of three on Beauty; RESULTS.md). "max_len" stands for the run's history length.
"""
PUBLISHED_APPROXIMATOR = {"chain_blocks": "false", "shared_norm": "true", "query_norm": "false",
                          "query_per_position": "true", "cross_kind": "heads", "padding_sink": "max_len"}
PAPER_READING = {"chain_blocks": "true", "shared_norm": "false", "query_norm": "true",
                 "query_per_position": "false", "cross_kind": "softmax", "padding_sink": "0"}
