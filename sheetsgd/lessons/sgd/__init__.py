"""Data lessons (kind ``sgd``): a model fitted to data by SGD, one step a row — the template's lesson, data,
models, losses, the one engine loop, the column spec and the Steps/Data/Epochs sheets.
"""
