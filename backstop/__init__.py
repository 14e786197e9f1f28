"""backstop: exchange liquidation, insurance-fund and ADL rules -- spec, reference, proofs."""

__version__ = "0.1.0"
