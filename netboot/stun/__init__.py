"""netboot.stun"""
