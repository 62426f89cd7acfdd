"""The fault-injection suite: small real Lightning and Keras training programs, each with one
fault injected (or none, for the clean configurations), and the code that runs and scores them.

    catalog.py            the programs: fault, framework, config, the check ids that catch it
    data.py               packaged data sets and the data faults
    lightning_program.py  one configurable LightningModule and its Trainer.fit
    keras_program.py      one configurable Keras Sequential model and its fit
    execute.py            runs one program in a mode (mlcheck / safety_net / plain) and scores it

Run the suite with `python benchmarks/run_faults.py` (see its --help); run one program with
`python benchmarks/run_faults.py --only lightning/lr_x100 --modes mlcheck -v`.
"""
