"""The small network the tests train: the recipe's four blocks and LSTM with few filters and units."""

SMALL_NET = dict(module__filters=(8, 8, 16, 16), module__hidden_size=16, verbose=0)
