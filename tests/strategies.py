"""The tests' strategies are the shipped ones (:mod:`backstop.strategies`), under their old name."""

import backstop.strategies as _shipped

globals().update({k: v for k, v in vars(_shipped).items() if not k.startswith("__")})
__all__ = list(_shipped.__all__)
