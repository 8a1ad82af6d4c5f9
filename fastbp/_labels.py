"""Class labels as the network's targets: scikit-learn's LabelBinarizer,
fitted and applied faster where the target is plain integers, and inverted
faster where the network's output is a plain array."""

import numpy as np
from sklearn.preprocessing import LabelBinarizer


def fit_labels(y):
    """A LabelBinarizer fitted on y, and y binarized as booleans.

    A 1-d integer or boolean y with two classes or more is encoded by one
    np.unique: its type is "binary" or "multiclass" by its count of classes
    alone, as scikit-learn's type_of_target decides for integers, and the
    classes' indices make the indicator matrix. LabelBinarizer's fit and
    transform check the target three times over, 2.1 ms of a 50000-sample fit.
    """
    if y.ndim == 1 and y.dtype.kind in "biu":
        classes, index = np.unique(y, return_inverse=True)
        # In the machine's byte order, as LabelBinarizer gives them: a big-endian y
        # would otherwise make classes_ and every predict big-endian.
        classes = classes.astype(classes.dtype.newbyteorder("="), copy=False)
        if len(classes) >= 2:
            label_binarizer = LabelBinarizer()
            label_binarizer.classes_ = classes
            label_binarizer.y_type_ = "binary" if len(classes) == 2 else "multiclass"
            label_binarizer.sparse_input_ = False
            return label_binarizer, _indicator(index, len(classes))
    label_binarizer = LabelBinarizer().fit(y)
    return label_binarizer, binarize(label_binarizer, y)


def binarize(label_binarizer, y):
    """label_binarizer.transform(y) as booleans. For a 1-d y whose labels are
    all among its classes (the caller has checked), the indicator matrix is
    built directly, without transform's second round of target checks."""
    classes = label_binarizer.classes_
    if y.ndim != 1 or label_binarizer.y_type_.startswith("multilabel") or len(classes) < 2:
        return label_binarizer.transform(y).astype(bool)
    return _indicator(np.searchsorted(classes, y), len(classes))


def _indicator(index, n_classes):
    """Class indices as LabelBinarizer's boolean matrix: one column per class,
    or for two classes a single column, true for the second."""
    if n_classes == 2:
        return (index == 1).reshape(-1, 1)
    Y = np.zeros((index.shape[0], n_classes), dtype=bool)
    Y[np.arange(index.shape[0]), index] = True
    return Y


def labels_of(label_binarizer, output):
    """label_binarizer.inverse_transform(output) for the network's output (a
    dense array: one column per class, or a 1-d array for two classes).

    A multiclass output's labels are the classes at each row's largest value,
    a binary one's the second class where the value passes the threshold
    between the binarizer's labels (0.5), as inverse_transform gives them; it
    is called for any other target. Its checks and array-API dispatch took
    30 of the 92 µs of a predict on one row of digits, to find one argmax.
    """
    classes = label_binarizer.classes_
    if not label_binarizer.sparse_input_ and type(output) is np.ndarray and type(classes) is np.ndarray:
        if label_binarizer.y_type_ == "multiclass" and output.ndim == 2 and output.shape[1] == classes.shape[0]:
            return classes[output.argmax(axis=1)]
        if label_binarizer.y_type_ == "binary" and output.ndim == 1 and classes.shape[0] == 2:
            threshold = (label_binarizer.pos_label + label_binarizer.neg_label) / 2.0
            return classes[(output > threshold).astype(np.intp)]
    return label_binarizer.inverse_transform(output)
