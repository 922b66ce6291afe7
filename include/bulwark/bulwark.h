#pragma once
/// @file
/// The whole public API of Bulwark.

#include "bulwark/config.h"
#include "bulwark/core/error.h"
#include "bulwark/core/files.h"
#include "bulwark/core/input_box.h"
#include "bulwark/core/losses.h"
#include "bulwark/core/model.h"
#include "bulwark/core/norms.h"
#include "bulwark/core/seed.h"
#include "bulwark/data/cifar10.h"
#include "bulwark/data/dataset.h"
#include "bulwark/data/idx.h"
#include "bulwark/defenses/trainer.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/models/mlp.h"
#include "bulwark/models/model_zoo.h"
#include "bulwark/models/normalize.h"
#include "bulwark/models/resnet.h"
#include "bulwark/models/small_cnn.h"
#include "bulwark/ops/project_step.h"
