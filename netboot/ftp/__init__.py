"""netboot.ftp"""
