"""Baseline recommenders: MostPop, SASRec, BERT4Rec, SVAE and ACVAE."""
