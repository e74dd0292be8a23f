"""``nurture demo``: the seed's first example, on the embedded stack."""
