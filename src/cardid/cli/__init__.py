"""The ``cardid`` command line: thin typer apps that parse, call a library function and print."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler

from cardid import __version__
from cardid.cli import catalog, cloud, collection, data, distill, export, index, pipeline, synth, train
from cardid.cli import eval as eval_cli
from cardid.cli import recognize as recognize_cli
from cardid.cli import serve as serve_cli
from cardid.errors import CardIDError

app = typer.Typer(
    name="cardid",
    help="Train and ship trading-card recognition models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(catalog.app, name="catalog")
app.add_typer(synth.app, name="synth")
app.add_typer(data.app, name="data")
app.add_typer(train.app, name="train")
app.add_typer(eval_cli.app, name="eval")
app.add_typer(index.app, name="index")
app.command("distill")(distill.distill_cmd)
app.command("recognize")(recognize_cli.recognize_cmd)
app.command("serve")(serve_cli.serve_cmd)
app.command("export")(export.export_cmd)
app.add_typer(cloud.app, name="cloud")
app.command("cost")(cloud.cost_cmd)
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(collection.app, name="collection")
app.command("demo")(pipeline.demo)

err = Console(stderr=True)
#: optional packages, and the extra that brings each (the base install is the runtime)
EXTRA_OF = {
    "torch": "train",
    "torchvision": "train",
    "timm": "train",
    "transformers": "train",
    "safetensors": "train",
    "matplotlib": "train",
    "onnx": "train",
    "onnxscript": "train",
    "onnxslim": "train",
    "ultralytics": "detect",
    "fastapi": "runtime",
    "uvicorn": "runtime",
    "coremltools": "coreml",
    "boto3": "aws",
}


def _version(value: bool) -> None:
    if value:
        print(f"cardid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
        force=True,
    )


def one_line(e: BaseException) -> str:
    """The message of an error as one line. An error raised in a DataLoader worker arrives with
    the worker's whole traceback in its message; the last line is the error itself."""
    msg = str(e).strip() or type(e).__name__
    if "Original Traceback" in msg or "Traceback (most recent call last)" in msg:
        last = msg.splitlines()[-1]
        msg = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    return " ".join(msg.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one red line on stderr and exit code 1, never a traceback.

    Besides :class:`CardIDError`, file-system errors (a directory where a file is expected, no
    permission, a full disk) are user errors too; anything else is a bug and keeps its traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except ModuleNotFoundError as e:
        extra = EXTRA_OF.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        err.print(
            f"[bold red]error:[/] this command needs {e.name}, which the runtime install leaves out: "
            f"pip install 'cardid\\[{extra}]'",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    except (CardIDError, OSError) as e:
        if isinstance(e, OSError) and logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        from rich.markup import escape

        # the message names the user's own values (a folder, a stage, a path): never read as markup
        err.print(f"[bold red]error:[/] {escape(one_line(e))}", highlight=False, soft_wrap=True)
        return 1
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as e:  # usage errors: typer prints them the usual way
        e.show()
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
