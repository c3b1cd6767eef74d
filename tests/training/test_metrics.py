import torch

from rnnkit.training.metrics import accuracy, confusion_matrix, macro_f1


def test_accuracy_and_macro_f1_against_hand_computed():
    target = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 2, 0])
    assert abs(accuracy(pred, target) - 4 / 6) < 1e-6
    # class 0: tp1 fp1 fn1 -> f1 .5; class 1: tp2 fp1 fn0 -> .8; class 2: tp1 fp0 fn1 -> 2/3
    assert abs(macro_f1(pred, target, 3) - (0.5 + 0.8 + 2 / 3) / 3) < 1e-9
    assert confusion_matrix(pred, target, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_macro_f1_ignores_absent_classes():
    target = torch.tensor([0, 1])
    assert macro_f1(target.clone(), target, 5) == 1.0
