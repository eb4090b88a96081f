"""The model zoo, in torchvision's layout, key names and initialisation where torchvision has
the model (so its state_dicts load with strict=True): LeNet-5 (lenet5 for 28x28 digits,
lenet5_32 for LeCun's 32x32 input), AlexNet, VGG, ResNet-18/34/50/101/152, GoogLeNet
(Inception v1), DenseNet-121 and MobileNetV2, with 32x32 variants (the `32` suffix) of AlexNet,
VGG and ResNet for CIFAR-sized inputs; and the character language models (char_lstm,
char_transformer)."""
from .alexnet import AlexNet, AlexNet32, alexnet, alexnet32
from .charlm import CharLSTM, CharTransformer, char_lstm, char_transformer
from .densenet import DenseNet, densenet121
from .googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from .lenet import LeNet5, lenet5, lenet5_32
from .mobilenet import MobileNetV2, mobilenet_v2
from .resnet import (
                     BasicBlock,
                     Bottleneck,
                     ResNet,
                     resnet18,
                     resnet18_32,
                     resnet34,
                     resnet34_32,
                     resnet50,
                     resnet50_32,
                     resnet101,
                     resnet101_32,
                     resnet152,
                     resnet152_32,
)
from .vgg import (
                  VGG,
                  vgg11,
                  vgg11_32,
                  vgg11_bn,
                  vgg11_bn32,
                  vgg13,
                  vgg13_bn,
                  vgg16,
                  vgg16_32,
                  vgg16_bn,
                  vgg16_bn32,
                  vgg19,
                  vgg19_bn,
)
