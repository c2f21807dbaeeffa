"""Baseline recommenders: MostPop, SASRec (and later BERT4Rec, SVAE)."""
