/**
 * One-line explanations of the terms the app and its reports use, for `<abbr title>`, tooltips
 * and inline notes. One table, so the app, the HTML export and the CLI say the same thing.
 */
export const GLOSSARY = {
  asr: {
    term: 'ASR',
    long: 'attack success rate',
    text: 'Attack success rate: the share of test images (not of the target class) that the model puts in the attacker’s target class once the trigger is added. Lower is better.',
  },
  boostedAsr: {
    term: 'ASR, trigger twice as strong',
    long: 'attack success rate with a boosted trigger',
    text: 'The same ASR test with a blended trigger (random or dimple blend, sinusoid, frequency) added at twice the strength the attacker trained with: does a stronger trigger reopen a backdoor the defense closed? It can come out below the plain ASR, since the model learned the trigger at the strength it was planted with.',
  },
  auroc: {
    term: 'AUROC',
    long: 'area under the ROC curve',
    text: 'Area under the ROC curve: the chance that a random poisoned example scores as more suspicious than a random clean one. 1.0 = perfect, 0.5 = a coin toss.',
  },
  probe: {
    term: 'probe',
    long: 'probe example',
    text: 'An example BaDLoss plants itself, so it knows its fate: clean (trusted, untouched), backdoor (its own trigger, one changed label) or mislabeled (a wrong label).',
  },
  k: {
    term: 'k',
    long: 'number of neighbours',
    text: 'How many of the most similar probe trajectories vote on each example; the score is the share of them that are backdoor or mislabeled probes.',
  },
  threshold: {
    term: 'threshold',
    long: 'rejection threshold',
    text: 'Examples whose suspicion score is above the threshold are removed before retraining. Higher removes fewer.',
  },
  trajectory: {
    term: 'trajectory',
    long: 'loss trajectory',
    text: 'An example’s loss after every epoch of training. Poisons are learned unusually fast or slow, so their trajectories look different.',
  },
  cleanAccuracy: {
    term: 'clean accuracy',
    long: 'clean accuracy',
    text: 'Share of the untouched test images the model classifies correctly. Higher is better; a good defense keeps it close to the undefended model’s.',
  },
  loo: {
    term: 'leave-one-out AUROC',
    long: 'leave-one-out AUROC over the probes',
    text: 'Each probe is scored by the other probes; the AUROC of those scores says how well the probes’ trajectories separate. Near 0.5 means they do not.',
  },
  tookHold: {
    term: 'took hold',
    long: 'the backdoor took hold',
    text: 'The undefended model learned the backdoor: its ASR reached the bar. An attack that never took hold cannot show whether a defense works.',
  },
  falsePositive: {
    term: 'clean examples lost',
    long: 'false positives',
    text: 'Clean (never poisoned) training examples the detector removed: the cost of the defense.',
  },
} as const;

export type GlossaryKey = keyof typeof GLOSSARY;
