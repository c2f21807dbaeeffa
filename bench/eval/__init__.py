"""Evaluation: the protocol every number obeys, and `bench eval` re-scoring of finished runs."""
