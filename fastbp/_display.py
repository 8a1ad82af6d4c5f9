"""Loss-curve plots of a fitted sgd or adam model, in scikit-learn's Display style."""

from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

# Room added above the highest point of each y axis, as a fraction of its
# range, for the legend's row.
_LEGEND_HEADROOM = 0.25


def _pyplot():
    """matplotlib.pyplot, imported only when a plot is asked for."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "LossCurveDisplay needs matplotlib, which fastbp does not require: install it with "
            "pip install 'fastbp[bench]' (or pip install matplotlib)."
        ) from exc
    return plt


class LossCurveDisplay:
    """Training loss per epoch and, with early stopping, validation loss and score.

    Build it with :meth:`from_estimator`; its :meth:`plot` draws the curves.
    The training loss (``loss_curve_``) is a running average over each epoch's
    minibatches while the weights move, and the validation loss
    (``validation_loss_curve_``) is the loss of the end-of-epoch weights on the
    held-out rows: both are the loss scikit-learn reports, data term plus L2
    penalty, so they share the left axis. The validation score (accuracy or R²)
    goes on a second y axis at the right.

    Parameters
    ----------
    loss_curve : list of float
        Training loss per epoch.
    validation_loss_curve : list of float or None, default=None
        Validation loss per epoch.
    validation_scores : list of float or None, default=None
        Validation score per epoch.
    score_name : str, default="score"
        Label of the validation score's axis.
    estimator_name : str or None, default=None
        Title of the plot.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes of the losses.
    score_ax_ : matplotlib Axes or None
        Second y axis of the validation score, sharing ax_'s x axis; None
        without validation scores.
    figure_ : matplotlib Figure
        Figure holding the axes.
    lines_ : list of matplotlib Line2D
        The curves drawn: training loss, then validation loss and validation
        score when present.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from fastbp import LossCurveDisplay, MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(early_stopping=True, max_iter=300, random_state=0).fit(X, y)
    >>> display = LossCurveDisplay.from_estimator(clf)
    >>> len(display.lines_)
    3
    """

    def __init__(self, *, loss_curve, validation_loss_curve=None, validation_scores=None, score_name="score",
                 estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_loss_curve = validation_loss_curve
        self.validation_scores = validation_scores
        self.score_name = score_name
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, ax=None):
        """Plot the curves a fitted fastbp (or scikit-learn) MLP recorded.

        Parameters
        ----------
        estimator : MLPClassifier, MLPRegressor or Pipeline
            A model fitted with solver 'sgd' or 'adam', or a fitted Pipeline
            whose last step is one (its curves are drawn).
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.

        Returns
        -------
        display : LossCurveDisplay
        """
        check_is_fitted(estimator)
        if isinstance(estimator, Pipeline):
            estimator = estimator[-1]
        if getattr(estimator, "loss_curve_", None) is None:
            name = type(estimator).__name__
            # An MLP fitted with lbfgs has the final loss_ only; other models have neither.
            reason = (f"this {name} was fitted with solver={estimator.solver!r}, which keeps only the final loss_."
                      if hasattr(estimator, "loss_") else f"{name} records no per-epoch loss_curve_.")
            raise ValueError(
                "LossCurveDisplay needs the per-epoch loss_curve_ that an MLP fitted with solver 'sgd' or 'adam' "
                f"records; {reason}"
            )
        display = cls(
            loss_curve=list(estimator.loss_curve_),
            validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
            validation_scores=getattr(estimator, "validation_scores_", None),
            score_name="validation accuracy" if is_classifier(estimator) else "validation R²",
            estimator_name=type(estimator).__name__,
        )
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.

        Returns
        -------
        display : LossCurveDisplay
            This object, with ax_, score_ax_, figure_ and lines_ set.
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        epochs = range(1, len(self.loss_curve) + 1)
        lines = ax.plot(epochs, self.loss_curve, label="training loss")
        if self.validation_loss_curve is not None:
            lines += ax.plot(range(1, len(self.validation_loss_curve) + 1), self.validation_loss_curve,
                             label="validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        score_ax = None
        if self.validation_scores is not None:
            score_ax = ax.twinx()
            # The third colour of the cycle, so the score is not taken for a loss.
            lines += score_ax.plot(range(1, len(self.validation_scores) + 1), self.validation_scores,
                                   color="C2", linestyle="--", label=self.score_name)
            score_ax.set_ylabel(self.score_name)
        # One row above the curves, in room made for it on both y axes: loc="best"
        # weighs only ax's own lines, and put the legend over the validation score.
        for axis in filter(None, (ax, score_ax)):
            low, high = axis.get_ylim()
            axis.set_ylim(low, high + _LEGEND_HEADROOM * (high - low))
        ax.legend(lines, [line.get_label() for line in lines], loc="upper center", ncol=len(lines))
        if self.estimator_name is not None:
            ax.set_title(self.estimator_name)
        self.ax_ = ax
        self.score_ax_ = score_ax
        self.figure_ = ax.figure
        self.lines_ = lines
        return self
