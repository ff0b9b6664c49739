"""netboot.pnp"""
