"""netboot.lab"""
