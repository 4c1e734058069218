"""Recalculating a student's workbook in a real engine (LibreOffice headless, IronCalc), always in a child
process under time and memory limits, and where the engines differ.
"""
