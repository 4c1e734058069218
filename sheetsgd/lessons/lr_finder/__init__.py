"""The learning-rate range test (Smith 2015; fastai's ``lr_find``), one mini-batch per row, for data and
tabular lessons.
"""
