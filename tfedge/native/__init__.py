"""Build the ``tfedge`` command, or an app that imports tfedge, into one native executable.

``tfedge-build`` (installed by ``pip install "tfedge[native]"``; ``python build_native.py``
in a checkout is the same command) compiles the installed tfedge runtime with Nuitka into
``dist/tfedge-<version>-linux-<arch>``: one file that runs on the device with nothing
installed (not even Python). Only the runtime goes in: one TFLite backend, tfedge and
numpy (as bytecode; numpy without BLAS by default) and the few stdlib modules they import;
never TensorFlow, the converters, the other backend, pip, setuptools or tests, nor the
server unless ``--serve`` asks for a binary whose default command is ``tfedge serve`` (it
also writes a systemd unit beside it). The payload is zstd-compressed and unpacked once,
on first start, into ``~/.cache/tfedge/native-<key>``.

Each target (what a user has: x86_64, 64-bit Raspberry Pi OS bookworm, JetPack 5, 32-bit
Pi OS) is one record in :mod:`tfedge.native.targets`, with the fastest backend that runs
there as its default. Before compiling, every ``--model`` is loaded and run once on that
backend; after compiling, the binary itself is run, and one that cannot start fails the
build. Nothing half-written is left in ``dist/``.

The modules, by job: ``targets`` (the records), ``config`` (what one build is, the checks
of the arguments), ``toolchain`` (what this machine needs), ``probe`` (the models run once),
``noblas`` (the numpy-without-BLAS venv), ``compile`` (Nuitka here, and the run of the
result), ``root`` (other architectures: a Debian root under qemu-user), ``docker``,
``progress`` (stages on stderr), ``cli``. ``import tfedge`` imports none of them.
"""
