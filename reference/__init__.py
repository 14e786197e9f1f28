"""backstop.reference -- the rules as exact, pure code (no I/O, no clock, no globals).

Rule modules (:mod:`margin`, and later liquidation, engine, fund, adl) are written over the
numeric kernel :mod:`num` so that the proofs can run them on Z3 terms.
"""
