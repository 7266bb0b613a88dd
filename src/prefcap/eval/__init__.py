"""Caption evaluation: reference-based metrics (BLEU … SPIDEr, SBERT similarity) and diversity statistics."""
