"""Curation: which logged responses become training data, and which held-out eval items.

Each row is kept or rejected with one reason (the first rule it fails), so `ponder flywheel
curate` can say why data was left out. Rules, in order: the request succeeded and its content
was logged; it finished (not cut by length) with an answer; a task checker, where one knows the
question, must pass (and then outranks the signals below); otherwise self-consistency agreement,
confidence and feedback must reach their thresholds. Duplicates (same prompt) keep the best row.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ponder.flywheel.records import LogRecord
from ponder.flywheel.verify import TaskVerifier
from ponder.tasks.answers import extract_answer
from ponder.tasks.item import canonical_question


@dataclass(frozen=True)
class CurationRules:
    min_agreement: float | None = None  # rows without a vote count as no agreement
    min_confidence: float | None = None  # rows without a confidence count as none
    min_feedback: float | None = None  # rows without feedback pass
    verified_only: bool = False  # keep only rows a task checker passed
    eval_fraction: float = 0.1  # per workload, into the held-out split


@dataclass
class CuratedRow:
    record: LogRecord
    messages: list[dict]  # the conversation up to the answer
    verified: bool | None  # the task checker's verdict; None where there is no checker
    answer: str | None  # the final answer the row teaches

    @property
    def key(self) -> str:
        turns = [(m.get("role"), canonical_question(str(m.get("content") or ""))) for m in self.messages]
        return json.dumps(turns)

    def rank(self) -> tuple:
        """Higher is better among duplicates: checked, then agreement, confidence, feedback, newest."""
        record = self.record
        return (
            self.verified is True,
            record.agreement or 0.0,
            record.confidence or 0.0,
            record.feedback or 0.0,
            record.created,
        )


@dataclass
class Curation:
    train: list[CuratedRow] = field(default_factory=list)
    eval: list[CuratedRow] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def kept(self) -> int:
        return len(self.train) + len(self.eval)


def prompt_messages(record: LogRecord) -> list[dict]:
    """The conversation a logged request asked about: chat rows store the messages as JSON."""
    if record.prompt is None:
        return []
    if record.endpoint == "chat":
        try:
            messages = json.loads(record.prompt)
        except json.JSONDecodeError:
            messages = None
        if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):
            return messages
    return [{"role": "user", "content": record.prompt}]


def question_of(messages: list[dict]) -> str:
    users = [m.get("content") for m in messages if m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else ""


def judge(record: LogRecord, rules: CurationRules, verifier: TaskVerifier | None) -> CuratedRow | str:
    """The curated row, or the reason it is rejected."""
    if record.status != "ok":
        return "error"
    if record.prompt is None or record.answer is None:
        return "no_content"
    if record.finish_reason not in (None, "stop"):
        return "truncated"
    answer = record.final_answer or extract_answer(record.answer, record.reasoning or "")
    if not answer:
        return "no_answer"
    messages = prompt_messages(record)
    verified = verifier.check(question_of(messages), answer) if verifier is not None else None
    if verified is False:
        return "failed_check"
    if verified is None:
        if rules.verified_only:
            return "unverified"
        if rules.min_agreement is not None and (record.agreement or 0.0) < rules.min_agreement:
            return "low_agreement"
        if rules.min_confidence is not None and (
            record.confidence is None or record.confidence < rules.min_confidence
        ):
            return "low_confidence"
    if (
        rules.min_feedback is not None
        and record.feedback is not None
        and record.feedback < rules.min_feedback
    ):
        return "low_feedback"
    return CuratedRow(record, messages, verified, answer)


def curate(
    records: Iterable[LogRecord], rules: CurationRules, verifier: TaskVerifier | None = None
) -> Curation:
    result = Curation()
    best: dict[str, CuratedRow] = {}
    for record in records:
        row = judge(record, rules, verifier)
        if isinstance(row, str):
            result.rejected[row] += 1
            continue
        held = best.get(row.key)
        if held is None:
            best[row.key] = row
            continue
        result.rejected["duplicate"] += 1
        if row.rank() > held.rank():
            best[row.key] = row
    by_workload: dict[str, list[CuratedRow]] = defaultdict(list)
    for row in best.values():
        by_workload[row.record.workload_id].append(row)
    for rows in by_workload.values():
        train, held_out = split(rows, rules.eval_fraction)
        result.train += train
        result.eval += held_out
    return result


def split(rows: list[CuratedRow], eval_fraction: float) -> tuple[list[CuratedRow], list[CuratedRow]]:
    """A deterministic split of one workload: rows ordered by a hash of their prompt, the first
    share held out (at least one once the workload has two rows), so a prompt never moves."""
    ordered = sorted(rows, key=lambda row: hashlib.sha256(row.key.encode()).hexdigest())
    count = round(len(ordered) * eval_fraction)
    if eval_fraction > 0 and count == 0 and len(ordered) >= 2:
        count = 1
    return ordered[count:], ordered[:count]
