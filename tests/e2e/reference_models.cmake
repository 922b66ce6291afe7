# Reference models for the end-to-end tests: each is trained once per test run by the CLI into
# the build tree (a ctest fixture: FIXTURES_SETUP reference_<name>), and the tests that need it
# (FIXTURES_REQUIRED) only load and evaluate it. Times are on this project's 2-core machine.
set(BULWARK_REFERENCE_MODELS_DIR ${CMAKE_BINARY_DIR}/reference-models)
file(MAKE_DIRECTORY ${BULWARK_REFERENCE_MODELS_DIR})

function(bulwark_reference_model name)
  set(out ${BULWARK_REFERENCE_MODELS_DIR}/${name}.pt)
  add_test(NAME reference_model_${name}
    COMMAND bulwark_cli --threads 1 train --quiet --seed 0 ${ARGN} --out ${out}
            --checkpoint ${BULWARK_REFERENCE_MODELS_DIR}/${name}.ckpt
            --report ${BULWARK_REFERENCE_MODELS_DIR}/${name}.json)
  set_tests_properties(reference_model_${name} PROPERTIES
    FIXTURES_SETUP reference_${name} LABELS e2e ${BULWARK_E2E_PROPERTIES} TIMEOUT 900)
endfunction()

# The demo model: SmallCNN, one epoch of all 60000 images, batch 64, Adam 1e-3 (~42 s).
bulwark_reference_model(standard --epochs 1 --batch-size 64 --validation-samples 0)
# Fast AT as README's command line trains it, with the strategy's default recipe (Wong et al.'s
# cyclic rate: Adam, one-cycle to 5e-3, batch 100), eps 0.1, 2 epochs of 20000 images; the best
# epoch by PGD-10 on 500 test images is kept (~64 s).
bulwark_reference_model(fast-at --strategy fast-at --eps 0.1 --epochs 2 --limit 20000
  --validation-samples 500 --eval-steps 10)
# Gaussian-noise training (sigma 0.25), the base model of randomized smoothing: one epoch of
# 30000 images, batch 64 (~24 s).
bulwark_reference_model(gaussian --strategy gaussian --sigma 0.25 --epochs 1 --batch-size 64
  --limit 30000 --validation-samples 0)
# DP-SGD: TanhCNN (Papernot et al. 2021), 5 epochs, sigma calibrated for epsilon 3 at delta
# 1e-5, C = 1, with DP-SGD's default recipe (Poisson rate 1024/60000, SGD 1.0 with momentum 0.9)
# (~40 s).
bulwark_reference_model(dp-tanh --arch tanh-cnn --dp --target-epsilon 3 --delta 1e-5
  --max-grad-norm 1 --epochs 5 --keep-last --validation-samples 0)

# Which end-to-end test suites need which models: "gtest filter|fixture,fixture".
set(BULWARK_E2E_SUITES
  "FashionMnistTest.*|"
  "TrainedSmallCnnTest.*|reference_standard"
  "PhysicalAttacksTest.*|reference_standard"
  "AdversarialTrainingTest.*|reference_standard,reference_fast-at"
  "AutoAttackEvaluationTest.*|reference_fast-at"
  "RuntimeDefensesTest.FeatureSqueezing*|reference_standard"
  "RuntimeDefensesTest.RandomizedSmoothing*|reference_gaussian"
  "PrivateTrainingTest.*|reference_dp-tanh")

# BadNets on Fashion-MNIST: 5% of the first 20000 training images stamped with a white 3x3
# square in the bottom-right corner and relabelled 8 (bag), written by `bulwark poison` into the
# build tree (~2 s), then a SmallCNN trained on them for 5 epochs, batch 64, Adam 1e-3 (~90 s).
# The backdoor appears in the fifth epoch (training accuracy 81.7% -> 86.7%); after three it is
# not learned yet (4 of 450 triggered test images fooled).
set(BULWARK_BADNETS_DATA ${BULWARK_REFERENCE_MODELS_DIR}/badnets-data)
add_test(NAME reference_data_badnets
  COMMAND sh -c "rm -rf '${BULWARK_BADNETS_DATA}' && '$<TARGET_FILE:bulwark_cli>' --threads 1 \
poison --quiet --seed 0 --attack badnets --rate 0.05 --target 8 --trigger square:3 --limit 20000 \
--out '${BULWARK_BADNETS_DATA}'")
set_tests_properties(reference_data_badnets PROPERTIES
  FIXTURES_SETUP reference_data_badnets LABELS e2e ${BULWARK_E2E_PROPERTIES})
bulwark_reference_model(badnets --data-dir ${BULWARK_BADNETS_DATA} --epochs 5
  --batch-size 64 --validation-samples 0)
set_tests_properties(reference_model_badnets PROPERTIES FIXTURES_REQUIRED reference_data_badnets)
list(APPEND BULWARK_E2E_SUITES
  "BackdoorDefensesTest.*|reference_badnets,reference_data_badnets,reference_standard")
