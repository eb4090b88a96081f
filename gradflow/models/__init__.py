"""The model zoo: LeNet-5, AlexNet, VGG and ResNet, with 32x32 variants, and the character
language models (char_lstm, char_transformer)."""
from .alexnet import AlexNet, AlexNet32, alexnet, alexnet32
from .charlm import CharLSTM, CharTransformer, char_lstm, char_transformer
from .lenet import LeNet5, lenet5
from .resnet import ResNet, resnet18, resnet18_32, resnet34, resnet34_32
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
