module trialledger/tools/loadgen

go 1.26.0
