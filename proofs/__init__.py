"""backstop.proofs -- obligations over the reference code, and the prover that checks them."""

_LOADED = False


def load_all() -> None:
    """Import every obligation module so that the registry is complete."""
    global _LOADED
    if _LOADED:
        return
    # registry order: the margin slice first, then what builds on it (mutation kills are tried in this order)
    from backstop.proofs import kernel_laws, margin, liquidation, fund, adl, transition, loop, loop_wide  # noqa: F401  (registration side effects)
    _LOADED = True
