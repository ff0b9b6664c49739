"""netboot.http"""
