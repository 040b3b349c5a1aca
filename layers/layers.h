// Every layer type in one include.
#pragma once

#include "activation.h"
#include "batchnorm.h"
#include "conv2d.h"
#include "dropout.h"
#include "flatten.h"
#include "init.h"
#include "linear.h"
#include "pooling.h"
#include "sequential.h"
