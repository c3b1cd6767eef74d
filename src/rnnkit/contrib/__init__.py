"""Adapters that let other libraries' frameworks drive rnnkit (each imports its library only when it is imported).

* `rnnkit.contrib.sktime`: `RNNClassifier` and `RNNRegressor`, sktime panel estimators over rnnkit's scikit-learn
  estimators (`pip install 'rnnkit[sktime]'`).
"""
