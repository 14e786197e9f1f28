"""backstop.proofs -- obligations over the reference code, and the prover that checks them."""

_LOADED = False


def load_all() -> None:
    """Import every obligation module so that the registry is complete."""
    global _LOADED
    if _LOADED:
        return
    from backstop.proofs import adl, fund, kernel_laws, liquidation, margin  # noqa: F401  (registration side effects)
    _LOADED = True
