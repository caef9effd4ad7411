/**
 * Questions asked while an answer is being worked out wait, and are then answered together by one
 * call (the DataLoader pattern, without its cache): every question is answered by work that
 * started after it was asked, so nothing answered is older than the question.
 */
interface Asked<Q, A> {
  readonly question: Q;
  readonly resolve: (answer: A) => void;
  readonly reject: (reason: unknown) => void;
}

export class Coalescer<Q, A> {
  private readonly answerAll: (questions: readonly Q[]) => Promise<readonly A[]>;
  private waiting: Asked<Q, A>[] = [];
  private busy = false;

  /** `answerAll` answers its questions in order; a rejection fails the questions of that call only. */
  constructor(answerAll: (questions: readonly Q[]) => Promise<readonly A[]>) {
    this.answerAll = answerAll;
  }

  ask(question: Q): Promise<A> {
    return new Promise<A>((resolve, reject) => {
      this.waiting.push({ question, resolve, reject });
      if (!this.busy) void this.answerWaiting();
    });
  }

  private async answerWaiting(): Promise<void> {
    this.busy = true;
    // Questions asked in the same turn of the event loop go in the first call too.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.waiting.length) {
      const asked = this.waiting;
      this.waiting = [];
      try {
        const answers = await this.answerAll(asked.map((one) => one.question));
        asked.forEach((one, index) => one.resolve(answers[index]!));
      } catch (error) {
        for (const one of asked) one.reject(error);
      }
    }
    this.busy = false;
  }
}
