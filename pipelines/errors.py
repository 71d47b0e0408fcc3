"""The small error hierarchy of the product.

Every error a user can cause or meet derives from :class:`MedallionError`. Messages name the table,
column, file or value involved and say what to do; tests assert the type, never the wording.
The CLI prints ``<ErrorType>: <message>`` on one line and exits with :attr:`MedallionError.exit_code`.
"""

from __future__ import annotations


class MedallionError(Exception):
    """Base of every error this product raises on purpose."""

    exit_code = 1


class ConfigError(MedallionError):
    """A configuration file is missing, malformed, or holds an unknown key or value."""

    exit_code = 2


class InvalidPipelineError(ConfigError):
    """The declared pipeline cannot run: every problem found is in :attr:`problems` (one line each)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        more = f" (and {len(problems) - 1} more: medallion plan lists them all)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}" if problems else "the pipeline is invalid")


class PseudonymKeyError(ConfigError):
    """The pseudonymisation key of the sensitive columns is missing, unreadable or too short."""


class UsageError(MedallionError):
    """A command was called with arguments that cannot work (unknown table, bad selection, ...)."""

    exit_code = 2


class QueryNotAllowedError(UsageError):
    """``medallion sql`` refused a statement before Spark saw it: it is not a read-only query over the
    declared tables (a command, DDL/DML, a shell ``TRANSFORM``, reflection, a file path, ``IDENTIFIER()``, ...)."""


class RetentionError(UsageError):
    """VACUUM was asked to keep less history than the table's ``delta.deletedFileRetentionDuration``."""


class OutputFolderError(UsageError):
    """A report folder (``--out``) is not empty and was not written by this product: nothing is deleted."""


class StorageError(MedallionError):
    """A Delta table could not be read or written."""


class TableNotFoundError(StorageError):
    """The logical table has no Delta table behind it yet."""


class UnsupportedTableFeatureError(StorageError):
    """The table uses a Delta feature that this engine cannot read or write correctly."""


class SchemaMismatchError(StorageError):
    """Data written to a table does not fit the table's schema."""


class WriteConflictError(StorageError):
    """A write could not be committed: the table changed underneath it, or the data broke a rule."""


class ConcurrentCommitError(WriteConflictError):
    """Another writer committed to the table while this write ran, in a way that conflicts with it; nothing
    of this write was committed. Safe to retry: the step reads its inputs again."""


class MergeSourceTooLargeError(StorageError):
    """A MERGE source exceeds the configured bound for the offline engine."""


class SessionError(MedallionError):
    """A Spark session could not be created as configured."""


class RunLockedError(MedallionError):
    """Another pipeline run holds this home's run lock (two runs at once would plan from the same state)."""

    exit_code = 5


class AuditError(MedallionError):
    """``medallion audit`` found landed rows that are nowhere downstream (or cannot audit a table)."""


class IngestionError(MedallionError):
    """Landed files could not be ingested (unreadable file, header that does not match the source)."""


class LandingError(MedallionError):
    """The sample data could not be delivered to the landing folder."""


class DataQualityError(MedallionError):
    """A ``fail``-level data-quality check failed: the target table was not written."""


class DataQualityGateError(MedallionError):
    """Training refused: the DQ results of the input table version hold a failed fail-level check, or none."""

    exit_code = 3


class ModelError(MedallionError):
    """Training, registry or scoring could not proceed (no champion, too little data, server not starting)."""


class TrainingDataError(ModelError):
    """The feature table version cannot be split into training and validation data that can train and judge a
    classifier (too few months, one label value). Found before any training work; ``medallion run`` reports
    it and ends successfully, since the data run itself succeeded."""


class BundleError(ConfigError):
    """The Databricks bundle (databricks.yml, resources/*.yml) does not resolve or fails a semantic check."""


class ClusterRuntimeError(MedallionError):
    """A job task runs on a cluster whose runtime cannot run it (an ML task on a non-ML runtime)."""

    exit_code = 3


class JobRunError(MedallionError):
    """A local job run of the bundle failed: a task failed after its retries, or could not be started."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler cancelling the run, ``kill``): handled like Ctrl-C, so that cleanup runs (the
    steps that finished keep their event rows, child processes and servers are stopped)."""
