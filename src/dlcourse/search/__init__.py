"""Random hyperparameter search: the space as data, a seeded sampler, and what to learn from it.

The space is the one of the Fashion-MNIST sweep report (lab 8): epochs, depth, width, weight
decay, learning rate, optimizer, batch size, initialization and activation, each with a few
values. A configuration is one row of a DataFrame with one column per hyperparameter; its values
are the course's own names (`dlcourse.vocabulary`: "normal", "xavier_normal"), the report's words
("random", "xavier") only display labels (`REPORT_WORDS`). `config_to_spec` turns a row into the
fields of a `dlcourse.runs.RunSpec`.

Stacking. `runs.sweep` trains MLPs as one stacked model when they differ only
in seed, lr, momentum, weight decay and init (`runs.stack_group`). In a plain random search
over this space almost no two configurations share the rest, so nothing stacks. `sample(...,
per_shape=m)` draws the other ("shape") hyperparameters once per group of `m` configurations
and gives each member its own distinct (lr, weight decay, init): every hyperparameter is still
drawn uniformly, configurations stay distinct, and the sweep trains in stacks of `m`.
`per_shape=1` is the plain random search.

Analysis, with pandas and NumPy only (no scikit-learn):
- `importance`: for each hyperparameter, the share of the variance of validation accuracy that
  its value alone explains (eta squared: the R^2 of predicting each run by the mean of its
  group), and the Spearman correlation with accuracy for hyperparameters whose values are
  ordered (numbers), NaN for unordered names; a hyperparameter that took one value explains
  nothing (importance 0); `above_chance` says which beat their chance level;
- `level_effects`: for each value of each hyperparameter, its runs' mean accuracy and the
  correlation of "has this value" (one-hot) with accuracy (what W&B's parameter-importance
  panel shows as correlation);
- `shuffled`: the search with its hyperparameter values dealt out again the way they were drawn
  (whole stacks for the keys a stack shares), so its importance is what noise alone gives;
- `best`, `recommend`: the top configuration, and a few good ones that differ in optimizer or
  activation.
"""

from .importance import above_chance, importance, last_gain, level_effects, level_means, matches, parts, share, shuffled
from .refine import best, local_steps, neighbours, recommend
from .space import (MEMBER_KEYS, METRICS, REPORT_WORDS, SPACE, attach, check_space, config_to_spec, configs_to_specs,
                    sample, space_size)

__all__ = ["SPACE", "REPORT_WORDS", "MEMBER_KEYS", "METRICS", "check_space", "space_size", "sample", "config_to_spec", "configs_to_specs",
           "attach", "importance", "above_chance", "level_effects", "level_means", "best", "recommend", "neighbours",
           "local_steps", "parts", "share", "matches", "last_gain", "shuffled"]
