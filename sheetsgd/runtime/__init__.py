"""What every command run shares: input files read bounded, the one output policy, text made safe to show, progress on stderr, deadlines.

May import: nothing of sheetsgd but ``errors``.
"""
