"""netboot.tftp"""
