"""Issue 7: faults, bad input and misuse on the real stack."""
